# Examples for python.yml, checked by `semgrep --test devrig/semgrep` in `make security`: the line
# after each "ruleid" annotation must be flagged by the rule it names, the line after each "ok" must not.
# Never imported or run; ruff, mypy and bandit skip this folder (pyproject.toml, the Makefile).
# ruff: noqa
import hashlib
import os
import pickle
import random
import secrets
import socket
import ssl
import subprocess
import tempfile
import urllib.request
import xml.etree.ElementTree
from pathlib import Path

import jinja2
import requests
import yaml


def commands(name, args):
    # ruleid: subprocess-shell
    subprocess.run(f"ls {name}", shell=True)
    # ruleid: subprocess-shell
    os.system("ls " + name)
    # ok: subprocess-shell
    subprocess.run(["ls", name], check=True)


def code(text):
    # ruleid: eval-exec
    eval(text)
    # ruleid: eval-exec
    exec(text)
    # ok: eval-exec
    eval("1 + 1")


def loading(blob, text):
    # ruleid: unsafe-deserialisation
    pickle.loads(blob)
    # ruleid: unsafe-deserialisation
    yaml.load(text)
    # ruleid: unsafe-deserialisation
    yaml.load(text, Loader=yaml.Loader)
    # ok: unsafe-deserialisation
    yaml.load(text, Loader=yaml.SafeLoader)
    # ok: unsafe-deserialisation
    yaml.safe_load(text)
    # ruleid: xml-parser-entities
    xml.etree.ElementTree.fromstring(text)


def http(url, token, data):
    # ruleid: requests-without-timeout
    requests.get(url)
    # ok: requests-without-timeout
    requests.post(url, json=data, timeout=10)
    # ruleid: urlopen-without-timeout
    urllib.request.urlopen(url)
    # ok: urlopen-without-timeout
    urllib.request.urlopen(url, timeout=5)
    # ruleid: tls-verification-off
    requests.get(url, verify=False, timeout=5)
    context = ssl.create_default_context()
    # ruleid: tls-verification-off
    context.check_hostname = False
    # ruleid: plain-http-url
    base = "http://api.example.com/v1"
    # ok: plain-http-url
    local = "http://127.0.0.1:3000/webhook"
    # ok: plain-http-url
    loopback = "http://localhost:8080"
    return base, local, loopback


def redirects(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    # ruleid: credentials-through-redirects
    urllib.request.urlopen(request, timeout=5)
    plain = urllib.request.Request(url)
    # ok: credentials-through-redirects
    urllib.request.urlopen(plain, timeout=5)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def no_redirects(url, token):
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    # ok: credentials-through-redirects
    opener.open(request, timeout=5)


def secrets_in_code(logger, app_token, secret):
    # ruleid: hardcoded-secret
    password = "hunter2hunter2hunter2"
    # ruleid: hardcoded-secret
    connect(app_token="d41d8cd98f00b204e9800998ecf8427e")
    # ok: hardcoded-secret
    token = os.environ["APP_TOKEN"]
    # ok: hardcoded-secret
    secret_name = "cinnox/app-token"
    # ruleid: hardcoded-secret
    aws_secret_access_key = "not-a-key-but-shaped-like-one-0123456789"
    # ruleid: secret-in-log
    logger.info("calling CINNOX", app_token=app_token)
    # ruleid: secret-in-log
    print(f"the secret is {secret}")
    # ok: secret-in-log
    logger.info("calling CINNOX", app_id="a1")
    # ruleid: secret-compared-with-equals
    if secret == password:
        pass
    # ok: secret-compared-with-equals
    if secret is None or secret == "":
        pass
    # ruleid: insecure-randomness-for-secrets
    new_token = random.getrandbits(128)
    # ok: insecure-randomness-for-secrets
    new_token = secrets.token_hex(16)
    # ok: insecure-randomness-for-secrets
    delay = random.uniform(0, 1)
    return password, token, secret_name, key_id, new_token, delay


def hashing(data):
    # ruleid: weak-hash
    hashlib.md5(data)
    # ok: weak-hash
    hashlib.md5(data, usedforsecurity=False)
    # ok: weak-hash
    hashlib.sha256(data)


def files(path):
    # ruleid: insecure-temp-file
    name = tempfile.mktemp()
    # ruleid: insecure-temp-file
    open("/tmp/cinnox.json", "w")
    # ok: insecure-temp-file
    handle, name = tempfile.mkstemp()
    # ruleid: world-writable-permissions
    os.chmod(path, 0o777)
    # ok: world-writable-permissions
    os.chmod(path, 0o600)
    return Path(name), handle


def queries(cursor, client, table, transaction_id):
    # ruleid: query-built-from-strings
    cursor.execute(f"SELECT * FROM tdr WHERE id = '{transaction_id}'")
    # ruleid: query-built-from-strings
    cursor.execute("SELECT * FROM tdr WHERE id = '%s'" % transaction_id)
    # ok: query-built-from-strings
    cursor.execute("SELECT * FROM tdr WHERE id = ?", (transaction_id,))
    # ruleid: query-built-from-strings
    client.execute_statement(Statement=f"SELECT * FROM \"{table}\" WHERE pk = '{transaction_id}'")
    # ok: query-built-from-strings
    client.execute_statement(Statement='SELECT * FROM "t" WHERE pk = ?', Parameters=[{"S": transaction_id}])


def markup(text):
    # ruleid: template-autoescape-off
    jinja2.Environment()
    # ok: template-autoescape-off
    jinja2.Environment(autoescape=True)


def servers(port):
    sock = socket.socket()
    # ruleid: bind-all-interfaces
    sock.bind(("0.0.0.0", port))
    # ok: bind-all-interfaces
    sock.bind(("127.0.0.1", port))
