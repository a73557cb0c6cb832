"""Sealed secrets, shaped like sops and Bitnami's Sealed Secrets: seal with `seal.pub` alone, open with the keyring.

- `keys`: key pairs, the private keyring file and `seal.pub`;
- `envelope`: one sealed value (`fm1:<key id>:<ephemeral key>:<box>`), bound to its config and field;
- `sealed_file`: `secrets.sealed.yaml`, config keys and fields in the clear, each value an envelope;
- `vault`: the keyring of the running service, the one place values are opened;
- `rotation`: re-sealing every value under a new key pair.
"""
