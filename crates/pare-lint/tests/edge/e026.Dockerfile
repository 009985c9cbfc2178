FROM debian:12
RUN npm install git+https://github.com/x/y.git
