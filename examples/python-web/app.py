"""python-web example: a tiny Flask app.

`/` links to `/second`; `/second` imports `report` lazily, inside the handler.
"""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return (
        "<!doctype html><html><body><h1>python-web</h1>"
        '<p><a href="/second">second page</a></p></body></html>'
    )


@app.route("/second")
def second():
    import report  # lazy on purpose: only this endpoint needs it

    return report.render(["alpha", "beta", "gamma"])


@app.route("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8080)
