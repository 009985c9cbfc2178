FROM debian:12
RUN bundle install
