FROM debian:12
COPY x $HOME/x
