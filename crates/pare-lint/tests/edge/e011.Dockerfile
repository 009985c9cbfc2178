FROM debian:12
RUN DEBIAN_FRONTEND=noninteractive apt-get install -y curl
