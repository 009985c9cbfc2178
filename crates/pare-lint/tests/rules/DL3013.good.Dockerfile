FROM debian:12
RUN pip install --no-cache-dir flask==3.0 -r requirements.txt .
