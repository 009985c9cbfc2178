FROM python:3.12 AS build
RUN echo build
FROM python:3.12-slim
USER 1000
