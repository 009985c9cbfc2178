FROM debian:12
RUN npm install --production
