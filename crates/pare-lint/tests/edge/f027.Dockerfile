FROM debian:12
RUN pip3 install --no-cache-dir -r requirements.txt --user
