FROM ruby:3
RUN gem install bundler:2.0 rake
