FROM ruby:3
RUN gem update --system
