FROM debian:12
RUN wget -q https://example.com/x
RUN wget --progress=dot:giga https://e.com/y
