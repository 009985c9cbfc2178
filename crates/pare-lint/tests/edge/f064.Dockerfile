FROM debian:12
RUN sudo -E bash -c "ls"
