FROM registry.example.com/team/debian
