FROM debian:12
ONBUILD RUN yarn install
