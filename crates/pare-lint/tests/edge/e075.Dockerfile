FROM debian:12
RUN ["/bin/bash", "-c", "curl x | sh"]
