FROM debian:12
COPY <<EOF /a
x
EOF

