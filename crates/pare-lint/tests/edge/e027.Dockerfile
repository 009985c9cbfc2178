FROM debian:12
RUN npm install ./local-pkg
