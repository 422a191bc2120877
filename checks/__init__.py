"""Checks over a synthesized cloud assembly: cdk-nag reports, cfn-lint, and a summary.

``python -m checks cdk.out`` is what ``make synth`` runs after synthesis; the tests call the
same functions on the assemblies they synthesize.
"""
