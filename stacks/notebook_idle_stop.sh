#!/bin/bash
# Notebook instance lifecycle configuration (on start): stop the instance once every kernel
# has been idle for __IDLE_MINUTES__ minutes, so a forgotten notebook stops costing money.
# Self-contained: the instance has no internet access, only the VPC endpoints.
set -euo pipefail

cat > /home/ec2-user/idle_stop.py <<'PYTHON'
import datetime
import json
import ssl
import subprocess
import sys
import urllib.request

idle_seconds = int(sys.argv[1]) * 60
context = ssl._create_unverified_context()  # Jupyter's own self-signed certificate, on localhost
sessions = json.load(urllib.request.urlopen("https://localhost:8443/api/sessions", context=context))
now = datetime.datetime.now(datetime.timezone.utc)
for session in sessions:
    kernel = session["kernel"]
    last = datetime.datetime.fromisoformat(kernel["last_activity"].replace("Z", "+00:00"))
    if kernel["execution_state"] == "busy" or (now - last).total_seconds() < idle_seconds:
        sys.exit(0)
name = json.load(open("/opt/ml/metadata/resource-metadata.json"))["ResourceName"]
subprocess.run(["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name], check=True)
PYTHON

echo "*/5 * * * * /usr/bin/python3 /home/ec2-user/idle_stop.py __IDLE_MINUTES__" | crontab -u ec2-user -
