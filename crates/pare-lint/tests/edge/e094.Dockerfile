FROM debian:12
RUN sudo -u x ls
