FROM debian:12
RUN curl -o x https://y && wget -q https://z
