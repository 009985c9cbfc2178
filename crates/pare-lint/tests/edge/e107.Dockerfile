FROM debian:12
ADD git@github.com:x/y.git /src
