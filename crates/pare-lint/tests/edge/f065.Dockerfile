FROM debian:12
RUN su -c "ls" user
