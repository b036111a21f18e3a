"""The local stack: template.yaml run on this machine, with moto for AWS and a CINNOX simulator.

Tooling only: nothing here ships to Lambda, and nothing here re-implements the
product. It hosts the real handlers from functions/ with the real layer package.
"""
