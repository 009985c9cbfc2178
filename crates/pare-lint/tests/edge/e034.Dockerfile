FROM ruby:3
RUN gem install bundler --version 2.0
