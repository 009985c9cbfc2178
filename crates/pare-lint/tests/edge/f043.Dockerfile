FROM debian:12
RUN wget -qO /x https://y
