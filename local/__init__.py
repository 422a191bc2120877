"""The local platform: the synthesized cloud assembly run end to end on one machine.

``python -m local`` (``make local``) reads ``cdk.out``, provisions an emulated account (moto, in
process) from the templates, publishes the assets as ``cdk deploy`` does, and runs the chain
from an upload under ``raw/`` to a prediction, with the platform's own functions and jobs.
This package never imports aws-cdk-lib.
"""
