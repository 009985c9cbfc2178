  FROM debian
