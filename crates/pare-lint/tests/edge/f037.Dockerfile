FROM debian:12
RUN yarn global add pm2
