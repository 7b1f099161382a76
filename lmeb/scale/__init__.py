"""Scale out on Ray: one benchmark run over many GPUs and machines, with a single-process run's numbers.

``RayPool`` (``lmeb.scale.pool``) puts a replica of the model on each Ray worker behind lmeb's own
``Encoder``/``Reranker`` protocols, so the engine, the embedding cache and the results are unchanged;
``lmeb.scale.cluster`` joins or starts the cluster; ``lmeb.scale.dispatch`` runs shards with retries.
Ray is an optional dependency (``pip install 'lmeb[ray]'``); it is imported only when a pool starts.
"""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
