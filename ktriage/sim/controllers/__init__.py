"""What reacts to changes in the cluster, one module per controller.

Today only the kubelet's part exists (`podstatus`: pod defaults and a consistent pod
status). The ReplicaSet, Deployment, StatefulSet, DaemonSet, Job/CronJob and garbage
collector controllers belong here, each in its own module.
"""
