FROM debian:12
RUN npm install --save-dev jest@29
