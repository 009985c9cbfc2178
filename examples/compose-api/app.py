"""compose-app api: notes stored in PostgreSQL, the count cached in redis.

GET  /health        200 "ok" when the database and the cache answer
GET  /notes         the notes, oldest first (from the database)
POST /notes         adds the request body as a note
GET  /count         the number of notes (cached in redis, invalidated by POST)
"""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg2
import redis

DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@db:5432/notes")
CACHE = redis.Redis(host=os.environ.get("REDIS_HOST", "cache"), port=6379, socket_timeout=5)


def db():
    return psycopg2.connect(DSN, connect_timeout=5)


def init():
    with db() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, payload):
        data = json.dumps(payload, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            CACHE.ping()
            return self.answer(200, "ok")
        if self.path == "/notes":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT id, body FROM notes ORDER BY id")
                rows = [{"id": i, "body": b} for i, b in cur.fetchall()]
            return self.answer(200, rows)
        if self.path == "/count":
            cached = CACHE.get("notes:count")
            if cached is None:
                with db() as conn, conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM notes")
                    cached = str(cur.fetchone()[0]).encode()
                CACHE.set("notes:count", cached)
                source = "database"
            else:
                source = "cache"
            return self.answer(200, {"count": int(cached), "from": source})
        return self.answer(404, "not found")

    def do_POST(self):
        if self.path != "/notes":
            return self.answer(404, "not found")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with db() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", (body,))
            new_id = cur.fetchone()[0]
        CACHE.delete("notes:count")
        return self.answer(201, {"id": new_id})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    init()
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
