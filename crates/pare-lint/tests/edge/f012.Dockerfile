FROM debian:12
COPY <<EOF /x
hi
EOF
