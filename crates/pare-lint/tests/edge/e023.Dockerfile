FROM debian:12
RUN npm i -g typescript
