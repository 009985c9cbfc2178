FROM localhost:5000/debian
