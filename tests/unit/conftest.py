"""Pure-Python tests of the collection's module_utils and filters: no database, no subprocess.

The collection is importable as ``ansible_collections.yuantus.relmigrate`` through Ansible's collection loader,
which ``tests/conftest.py`` installs for the session.
"""
