FROM debian:12
RUN npm install express@4.18.2 @types/node@20
RUN npm install
RUN npm ci
