FROM debian:12
RUN <<EOF bash
cd /x
EOF

