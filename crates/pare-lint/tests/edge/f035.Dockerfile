FROM debian:12
RUN npm install -g pnpm@8 && npm cache clean --force
