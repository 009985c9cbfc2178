FROM debian:12
ONBUILD RUN npm install express
