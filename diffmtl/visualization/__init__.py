# Copyright (c) diffmtl contributors. All rights reserved.
__all__ = []
