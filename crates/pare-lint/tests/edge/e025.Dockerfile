FROM debian:12
RUN npm install -g npm@latest
