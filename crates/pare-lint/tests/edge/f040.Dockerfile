FROM debian:12
RUN gem install bundler -v=2.0
