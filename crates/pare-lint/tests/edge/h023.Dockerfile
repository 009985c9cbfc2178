FROM debian:12
RUN python3 <<EOF
import os
os.chdir("/x")
EOF

