"""The peer for the acknowledgement benchmark: a bare Flask endpoint, nothing else."""

from flask import Flask
from flask import jsonify
from flask import request

app = Flask(__name__)


@app.post("/webhooks/<name>")
def ack(name: str):
    request.get_data()
    return jsonify({"status": "ok"}), 200
