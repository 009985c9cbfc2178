FROM debian:12
RUN gem install -N bundler
