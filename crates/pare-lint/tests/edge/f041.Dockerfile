FROM debian:12
RUN gem install bundler --no-document
