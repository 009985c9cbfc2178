FROM debian:12
ADD --keep-git-dir=true https://github.com/x/y.git /src
