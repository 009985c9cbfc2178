FROM debian:12
RUN <<EOF
cd /x
EOF

RUN <<-EOT
	cd /y
	EOT

