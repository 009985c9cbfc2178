FROM debian:12
RUN bash -c "cd /x && make"
