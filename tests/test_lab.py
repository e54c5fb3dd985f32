"""The course opens in JupyterLab, started exactly as README.md tells readers to start it, as root and as a normal user.

The server is driven through its REST API and a kernel websocket: the notebooks are listed,
the JupyterLab page is served, and the backend notebook runs in a kernel of this environment
with the outputs stored in it.
"""
import asyncio, configparser, json, os, re, secrets, shlex, socket, subprocess, sys, tempfile, time, uuid
import urllib.error, urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 60  # seconds for the server to answer /api/status
CELL_TIMEOUT = 60     # seconds for one cell to finish
IGNORE_MARKERS = ("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP")


def readme_lab_command():
    "argv of the `jupyter lab ...` part of README.md's first ```bash block, exactly as written there."
    m = re.search(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    assert m, "README.md has no ```bash block"
    command = " ".join(m.group(1).split())
    argv = shlex.split(command.split("&&")[-1])
    assert argv[:2] == [".venv/bin/jupyter", "lab"], f"README's first command does not end in `.venv/bin/jupyter lab`: {command}"
    return [str(Path(sys.executable).parent / "jupyter")] + argv[1:]


def notebook_dir(argv):
    "The folder JupyterLab serves, from `--notebook-dir=...` (relative to the repository root)."
    dirs = [a.split("=", 1)[1] for a in argv if a.startswith("--notebook-dir=")]
    return ROOT / (dirs[-1] if dirs else ".")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    "A running JupyterLab: its process, its log, and a token-authenticated REST client."
    def __init__(self, proc, log, port, token, argv):
        self.proc, self.log, self.port, self.token, self.argv = proc, log, port, token, argv
        self.url = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy

    def request(self, method, path, body=None, timeout=30):
        "(status, headers, body bytes) of one authenticated request; HTTP errors are returned, not raised."
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with self.opener.open(req, timeout=timeout) as r: return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, expect=200):
        status, _, raw = self.request(method, path, body)
        assert status == expect, f"{method} {path} answered {status}: {raw[:500]!r}\n{self.log_text()}"
        return json.loads(raw) if raw else None

    def log_text(self):
        return f"--- server log ---\n{self.log.read_text(errors='replace')[-6000:]}"

    def stop(self):
        "Shut the server down through its API; kill it if it does not stop."
        try:
            status, _, _ = self.request("POST", "/api/shutdown")
            assert status == 200, self.log_text()
            assert self.proc.wait(timeout=30) == 0, self.log_text()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try: self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill(); self.proc.wait()


def start_readme_server(home, preexec_fn=None):
    """Start README's `jupyter lab` command line, verbatim, and wait until it answers.

    Nothing is added to the command line: what a test needs (loopback address, a free port, a random
    token, no browser, no network access for news or update checks) goes into a configuration file in
    a fresh JUPYTER_CONFIG_DIR, which also keeps the user's own configuration out. So a command that
    fails for a reader (e.g. as root without --allow-root) fails here too."""
    home = Path(home)
    argv, port, token = readme_lab_command(), free_port(), secrets.token_hex(24)
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False},
        "IdentityProvider": {"token": token},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(  # user-level config, runtime files, kernelspecs and IPython profiles from a clean slate
        HOME=str(home), JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_DATA_DIR=str(home / "data"), IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1", PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    log = home / "server.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec_fn)
    server = Server(proc, log, port, token, argv)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"README's command `{shlex.join(argv)}` exited with {proc.returncode} before answering\n{server.log_text()}")
        try:
            if server.request("GET", "/api/status", timeout=5)[0] == 200: return server
        except OSError: pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"JupyterLab did not answer /api/status within {STARTUP_TIMEOUT} s\n{server.log_text()}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "One JupyterLab, started as this process's user (root in most containers and CI images), for the tests below."
    server = start_readme_server(tmp_path_factory.mktemp("lab"))
    try: yield server
    finally: server.stop()


NOBODY = 65534  # the conventional unprivileged uid/gid

def _as_nobody():
    os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)


def test_readme_command_runs_as_a_normal_user():
    """Run as root, the fixture above shows README's command works for root; this runs it as an unprivileged user."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("this process is not root: the `lab` fixture already runs README's command as a normal user")
    try:
        probe = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "lab", "--version"], cwd=ROOT,
                               capture_output=True, preexec_fn=_as_nobody, timeout=60)
        why = None if probe.returncode == 0 else probe.stderr[-300:]
    except (OSError, subprocess.SubprocessError) as e:
        why = f"{type(e).__name__}: {e}"
    if why is not None:
        pytest.skip(f"the checkout, its .venv or its Python is not readable by an unprivileged user here ({why!r})")
    home = Path(tempfile.mkdtemp(prefix="dlnotes-lab-"))
    os.chown(home, NOBODY, NOBODY)
    server = start_readme_server(home, preexec_fn=_as_nobody)
    try:
        listing = server.json("GET", "/api/contents")
        assert {p.name for p in notebook_dir(server.argv).glob("*.ipynb")} <= {c["name"] for c in listing["content"]}
        assert server.request("GET", "/lab")[0] == 200
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(home)])


def test_readme_command_is_what_runs(lab):
    assert lab.argv[0] == str(Path(sys.executable).parent / "jupyter")
    assert lab.argv[1] == "lab"
    assert "--notebook-dir=nbs" in lab.argv  # README's choice, checked here so a change to it is noticed


def test_lab_lists_and_serves_the_course(lab):
    nbs = notebook_dir(lab.argv)
    expected = {p.name for p in nbs.glob("*.ipynb")}
    assert expected, f"no notebooks in {nbs}"
    listing = lab.json("GET", "/api/contents")
    listed = {c["name"] for c in listing["content"] if c["type"] == "notebook"}
    assert expected <= listed, f"missing from JupyterLab's listing: {sorted(expected - listed)}"

    status, headers, page = lab.request("GET", "/lab")
    assert status == 200 and headers["Content-Type"].startswith("text/html"), (status, page[:300])
    assert b"jupyter-config-data" in page  # the JupyterLab application page, not an error or login page

    for name in sorted(expected):  # each notebook opens: the server reads and validates it
        model = lab.json("GET", f"/api/contents/{name}")
        assert model["type"] == "notebook" and model["format"] == "json"
        assert model["content"]["cells"], name
        assert lab.request("GET", f"/lab/tree/{name}")[0] == 200


# ---------------------------------------------------------------------------- a kernel over the websocket

def sanitizer():
    "The substitutions of nbval_sanitize.cfg, applied the way nbval applies them."
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "nbval_sanitize.cfg")
    subs = [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]
    def clean(text):
        for rx, rep in subs: text = rx.sub(rep, text)
        return text
    return clean


def stored_text(outputs):
    "stdout and text/plain results of stored (or received) outputs, concatenated in order."
    parts = []
    for o in outputs:
        if o["output_type"] == "stream" and o["name"] == "stdout": parts.append(o["text"])
        elif o["output_type"] == "execute_result": parts.append(o["data"].get("text/plain", ""))
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


class Kernel:
    "Just enough of the Jupyter messaging protocol (v5) to run cells over a kernel's websocket."
    def __init__(self, ws):
        self.ws, self.session = ws, uuid.uuid4().hex

    def send(self, msg_type, content, channel="shell"):
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                       "version": "5.3", "date": datetime.now(timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}))
        return msg_id

    async def replies(self, msg_id, reply_type):
        "(reply content, iopub messages) for request `msg_id`, once the reply and the idle status are in."
        reply, iopub, idle = None, [], False
        while reply is None or not idle:
            raw = await asyncio.wait_for(self.ws.read_message(), CELL_TIMEOUT)
            assert raw is not None, "the kernel websocket closed"
            if isinstance(raw, bytes): continue  # binary frames carry buffers (widgets), none expected here
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id: continue
            if msg["channel"] == "shell" and msg["msg_type"] == reply_type: reply = msg["content"]
            elif msg["channel"] == "iopub":
                if msg["msg_type"] == "status": idle = idle or msg["content"]["execution_state"] == "idle"
                else: iopub.append(msg)
        return reply, iopub

    async def execute(self, code):
        msg_id = self.send("execute_request", {"code": code, "silent": False, "store_history": True,
                                               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        reply, iopub = await self.replies(msg_id, "execute_reply")
        outputs = [{"output_type": m["msg_type"], **m["content"]} for m in iopub
                   if m["msg_type"] in ("stream", "execute_result", "display_data", "error")]
        return reply, outputs


async def run_backend_notebook(lab, kernel_id, cells):
    url = f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}&token={lab.token}"
    ws = await asyncio.wait_for(websocket_connect(HTTPRequest(url)), 30)
    try:
        k = Kernel(ws)
        info, _ = await k.replies(k.send("kernel_info_request", {}), "kernel_info_reply")
        assert info["status"] == "ok" and info["language_info"]["name"] == "python"
        results = [await k.execute("".join(c["source"])) for c in cells]
        where = await k.execute("import sys, dlnotes; print(sys.prefix); print(dlnotes.__file__)")
        return results, where
    finally:
        ws.close()


def test_backend_notebook_runs_in_a_lab_kernel(lab):
    nb_path = notebook_dir(lab.argv) / "01_backend.ipynb"
    cells = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
    kernel = lab.json("POST", "/api/kernels", {"name": "python3"}, expect=201)
    try:
        results, where = asyncio.run(run_backend_notebook(lab, kernel["id"], cells))
    finally:
        status = lab.request("DELETE", f"/api/kernels/{kernel['id']}")[0]
    assert status == 204, lab.log_text()

    clean, compared = sanitizer(), []
    for cell, (reply, outputs) in zip(cells, results):
        source = "".join(cell["source"])
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert reply["status"] == "ok" and not errors, f"cell failed:\n{source}\n{errors or reply}"
        if any(m in source for m in IGNORE_MARKERS): continue
        expected = stored_text(cell["outputs"])
        assert clean(stored_text(outputs)) == clean(expected), f"output differs from the stored one for:\n{source}"
        if expected: compared.append(expected)
    assert compared, "no stored output was compared"
    # The backend depends on the machine, so those cells are not compared with stored outputs but with
    # what the library chooses in this test's own process (same environment, same $DLNOTES_BACKEND).
    from dlnotes.backend import xp, HAS_GPU, BACKEND_REASON
    live = [stored_text(outputs) for _, outputs in results]
    assert f"backend: {xp.__name__}, HAS_GPU={HAS_GPU}\n" in live, live
    assert BACKEND_REASON + "\n" in live, live

    reply, outputs = where
    assert reply["status"] == "ok", reply
    prefix, module = stored_text(outputs).split()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()  # the kernel is this environment's Python...
    assert Path(module).resolve().is_relative_to(ROOT)  # ...running this checkout's library
