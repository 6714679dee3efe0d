#!/usr/bin/env python3
# Generates deploy/grafana/schoolgate.json: python3 scripts/grafana-dashboard.py
# Edit the panels here rather than the JSON; deploy/deploy_test.go checks that
# every metric the dashboard names is one the code exports.
import json
panels=[]
pid=[0]
def nid():
    pid[0]+=1; return pid[0]
DS={"type":"prometheus","uid":"${datasource}"}
y=[0]
def row(title):
    panels.append({"type":"row","title":title,"id":nid(),"collapsed":False,"gridPos":{"h":1,"w":24,"x":0,"y":y[0]},"panels":[]})
    y[0]+=1
def ts(title, targets, x, w, h=8, unit="short", stack=False, desc="", overrides=None):
    p={"type":"timeseries","title":title,"id":nid(),"datasource":DS,"description":desc,
       "gridPos":{"h":h,"w":w,"x":x,"y":y[0]},
       "fieldConfig":{"defaults":{"unit":unit,"min":0,"custom":{"drawStyle":"line","lineWidth":1,"fillOpacity":20 if stack else 8,
          "stacking":{"mode":"normal" if stack else "none","group":"A"},"showPoints":"never","spanNulls":True},
          "color":{"mode":"palette-classic"}},"overrides":overrides or []},
       "options":{"legend":{"displayMode":"table","placement":"bottom","calcs":["mean","max","lastNotNull"]},"tooltip":{"mode":"multi","sort":"desc"}},
       "targets":[{"datasource":DS,"expr":e,"legendFormat":l,"refId":chr(65+i),"range":True} for i,(e,l) in enumerate(targets)]}
    panels.append(p)
def stat(title, expr, x, w, unit="short", desc="", thresholds=None, decimals=None, legend=""):
    p={"type":"stat","title":title,"id":nid(),"datasource":DS,"description":desc,
       "gridPos":{"h":4,"w":w,"x":x,"y":y[0]},
       "fieldConfig":{"defaults":{"unit":unit,"color":{"mode":"thresholds"},
          "thresholds":thresholds or {"mode":"absolute","steps":[{"color":"green","value":None}]}},"overrides":[]},
       "options":{"reduceOptions":{"calcs":["lastNotNull"],"fields":"","values":False},"colorMode":"background","graphMode":"area","textMode":"auto","justifyMode":"auto","orientation":"auto"},
       "targets":[{"datasource":DS,"expr":expr,"legendFormat":legend,"refId":"A","range":True}]}
    if decimals is not None: p["fieldConfig"]["defaults"]["decimals"]=decimals
    panels.append(p)
def steps(*s):
    return {"mode":"absolute","steps":[{"color":c,"value":v} for v,c in s]}
J='job=~"$job", instance=~"$instance"'
def sel(extra=""):
    return "{"+J+(", "+extra if extra else "")+"}"
S=sel()
SB=sel('verdict="block"')
R="[$__rate_interval]"
red_block=[{"matcher":{"id":"byName","options":"block"},"properties":[{"id":"color","value":{"mode":"fixed","fixedColor":"red"}}]},
           {"matcher":{"id":"byName","options":"allow"},"properties":[{"id":"color","value":{"mode":"fixed","fixedColor":"blue"}}]}]
def ratio(h,m):
    return f'sum(rate({h}{S}{R})) / clamp_min(sum(rate({h}{S}{R})) + sum(rate({m}{S}{R})), 1e-9)'

row("Overview")
stat("Gateway up", f'min(up{S})', 0, 3, desc="1 when Prometheus can scrape every selected schoolgate instance.",
     thresholds=steps((None,"red"),(1,"green")), legend="up")
stat("Web requests /s", f'sum(rate(schoolgate_proxy_requests_total{S}{R}))', 3, 4, unit="reqps")
stat("DNS queries /s", f'sum(rate(schoolgate_dnsfilter_queries_total{S}{R}))', 7, 4, unit="reqps")
stat("Blocked share (web)", f'sum(rate(schoolgate_proxy_requests_total{SB}{R})) / clamp_min(sum(rate(schoolgate_proxy_requests_total{S}{R})), 1e-9)', 11, 4, unit="percentunit", decimals=1)
stat("Verdict cache hit ratio", ratio("schoolgate_policy_verdict_cache_hits_total","schoolgate_policy_verdict_cache_misses_total"), 15, 3, unit="percentunit", decimals=1,
     thresholds=steps((None,"red"),(0.5,"orange"),(0.8,"green")))
stat("Safeguarding alerts (24h)", f'sum(increase(schoolgate_alerts_sent_total{S}[24h]))', 18, 3, decimals=0,
     thresholds=steps((None,"green"),(1,"orange")), desc="Alert deliveries in the last 24 hours, all sinks (an alert sent to webhook and file counts twice).")
stat("Log lines dropped (24h)", f'sum(increase(schoolgate_logging_dropped_lines_total{S}[24h]))', 21, 3, decimals=0,
     thresholds=steps((None,"green"),(1,"red")), desc="Access-log lines lost. Anything but 0 means the log is incomplete for that day.")
y[0]+=4

row("Traffic and blocks")
ts("Web requests by verdict", [(f'sum by (verdict) (rate(schoolgate_proxy_requests_total{S}{R}))',"{{verdict}}")], 0, 12, unit="reqps", stack=True, overrides=red_block)
ts("DNS queries by verdict", [(f'sum by (verdict) (rate(schoolgate_dnsfilter_queries_total{S}{R}))',"{{verdict}}")], 12, 12, unit="reqps", stack=True, overrides=red_block)
y[0]+=8
ts("Blocked web requests by category (top 10)", [(f'topk(10, sum by (category) (rate(schoolgate_proxy_blocked_by_category_total{S}{R})))',"{{category}}")], 0, 12, unit="reqps", stack=True,
   desc="A request counts once for each category of its host.")
ts("Web requests by profile", [(f'sum by (profile, verdict) (rate(schoolgate_proxy_requests_total{S}{R}))',"{{profile}} {{verdict}}")], 12, 12, unit="reqps")
y[0]+=8
ts("DNS answers by rcode", [(f'sum by (rcode) (rate(schoolgate_dnsfilter_queries_total{S}{R}))',"{{rcode}}")], 0, 8, unit="reqps", stack=True)
ts("Open connections and tunnels", [(f'sum(schoolgate_proxy_active_connections{S})',"connections"),(f'sum(schoolgate_proxy_active_tunnels{S})',"tunnels")], 8, 8)
ts("Tunnel throughput", [(f'sum by (direction) (rate(schoolgate_proxy_relayed_bytes_total{S}{R}))',"{{direction}}")], 16, 8, unit="Bps")
y[0]+=8

row("Latency")
def q(metric, qs, by="le", legend=None):
    return [(f'histogram_quantile({x}, sum by ({by}) (rate({metric}_bucket{S}{R})))', legend or f"p{int(x*100)}") for x in qs]
ts("Web request latency", q("schoolgate_proxy_request_duration_seconds",[0.5,0.95,0.99]), 0, 8, unit="s",
  desc="For CONNECT tunnels the duration is the tunnel's life, so high quantiles follow long-lived connections.")
ts("DNS answer latency", q("schoolgate_dnsfilter_request_duration_seconds",[0.5,0.95,0.99]), 8, 8, unit="s")
ts("Upstream DNS latency p95", q("schoolgate_dnsfilter_upstream_duration_seconds",[0.95],by="le, upstream",legend="{{upstream}}"), 16, 8, unit="s")
y[0]+=8

row("Caches")
ts("Cache hit ratio", [(ratio("schoolgate_policy_verdict_cache_hits_total","schoolgate_policy_verdict_cache_misses_total"),"verdict cache"),
  (ratio("schoolgate_dnsfilter_cache_hits_total","schoolgate_dnsfilter_cache_misses_total"),"DNS cache")], 0, 12, unit="percentunit")
ts("Cache entries", [(f'sum(schoolgate_policy_verdict_cache_entries{S})',"verdict cache"),(f'sum(schoolgate_dnsfilter_cache_entries{S})',"DNS cache")], 12, 12)
y[0]+=8

row("Upstream health")
ts("Upstream DNS errors by upstream and kind", [(f'sum by (upstream, kind) (rate(schoolgate_dnsfilter_upstream_errors_total{S}{R}))',"{{upstream}} {{kind}}")], 0, 8, unit="reqps")
ts("Web upstream errors by kind", [(f'sum by (kind) (rate(schoolgate_proxy_upstream_errors_total{S}{R}))',"{{kind}}")], 8, 8, unit="reqps")
ts("Refusals", [(f'sum(rate(schoolgate_proxy_auth_failures_total{S}{R}))',"407 auth"),
   (f'sum(rate(schoolgate_proxy_overload_refusals_total{S}{R}))',"503 tunnel limit"),
   (f'sum(rate(schoolgate_dnsfilter_rate_limited_total{S}{R}))',"DNS rate limited"),
   (f'sum(rate(schoolgate_dnsfilter_malformed_total{S}{R}))',"DNS malformed")], 16, 8, unit="reqps")
y[0]+=8

row("Access log and safeguarding alerts")
ts("Access-log lines written", [(f'sum(rate(schoolgate_logging_lines_total{S}{R}))',"lines/s")], 0, 6)
ts("Access-log writer queue", [(f'max(schoolgate_logging_queue_length{S})',"queued entries"),
   (f'sum(rate(schoolgate_logging_queue_full_total{S}{R}))',"queue full /s")], 6, 6)
ts("Access-log problems", [(f'sum(rate(schoolgate_logging_write_errors_total{S}{R}))',"write errors /s"),
   (f'sum(rate(schoolgate_logging_dropped_lines_total{S}{R}))',"dropped lines /s")], 12, 6,
   overrides=[{"matcher":{"id":"byName","options":"dropped lines /s"},"properties":[{"id":"color","value":{"mode":"fixed","fixedColor":"red"}}]}])
ts("Safeguarding alerts", [(f'sum by (sink) (increase(schoolgate_alerts_sent_total{S}{R}))',"sent {{sink}}"),
   (f'sum by (sink) (increase(schoolgate_alerts_failures_total{S}{R}))',"failed {{sink}}"),
   (f'sum(increase(schoolgate_alerts_dropped_total{S}{R}))',"dropped")], 18, 6)
y[0]+=8

row("Process")
ts("Config reloads", [(f'sum by (result) (increase(schoolgate_config_reloads_total{S}{R}))',"{{result}}")], 0, 8)
ts("Memory", [(f'sum by (instance) (schoolgate_process_resident_memory_bytes{S})',"RSS {{instance}}"),(f'sum by (instance) (schoolgate_go_memstats_heap_inuse_bytes{S})',"heap {{instance}}")], 8, 8, unit="bytes")
ts("CPU and goroutines", [(f'sum by (instance) (rate(schoolgate_process_cpu_seconds_total{S}{R}))',"CPU cores {{instance}}"),(f'sum by (instance) (schoolgate_go_goroutines{S})',"goroutines {{instance}}")], 16, 8)
y[0]+=8

dash={
 "__inputs":[{"name":"DS_PROMETHEUS","label":"Prometheus","type":"datasource","pluginId":"prometheus","pluginName":"Prometheus"}],
 "__requires":[{"type":"grafana","id":"grafana","name":"Grafana","version":"10.0.0"},{"type":"datasource","id":"prometheus","name":"Prometheus","version":"1.0.0"}],
 "title":"schoolgate","uid":"schoolgate-gateway","description":"schoolgate filtering gateway: traffic, blocks, latency, caches, upstream health, access-log writer and safeguarding alerts.",
 "tags":["schoolgate","proxy","dns"],"timezone":"browser","editable":True,"graphTooltip":1,"refresh":"30s","schemaVersion":39,"version":1,
 "time":{"from":"now-6h","to":"now"},
 "annotations":{"list":[{"builtIn":1,"datasource":{"type":"grafana","uid":"-- Grafana --"},"enable":True,"hide":True,"iconColor":"rgba(0, 211, 255, 1)","name":"Annotations & Alerts","type":"dashboard"},
   {"datasource":DS,"enable":True,"name":"Config reloads","iconColor":"purple","expr":'changes(schoolgate_config_last_reload_success_timestamp_seconds'+S+'[2m]) > 0',"titleFormat":"config reloaded","step":"60s"}]},
 "templating":{"list":[
   {"name":"datasource","type":"datasource","query":"prometheus","label":"Data source","current":{},"hide":0,"refresh":1},
   {"name":"job","type":"query","datasource":DS,"label":"Job","query":{"query":"label_values(schoolgate_build_info, job)","refId":"job"},"definition":"label_values(schoolgate_build_info, job)","includeAll":True,"multi":True,"allValue":".*","current":{},"refresh":2,"sort":1},
   {"name":"instance","type":"query","datasource":DS,"label":"Instance","query":{"query":"label_values(schoolgate_build_info{job=~\"$job\"}, instance)","refId":"instance"},"definition":"label_values(schoolgate_build_info{job=~\"$job\"}, instance)","includeAll":True,"multi":True,"allValue":".*","current":{},"refresh":2,"sort":1}]},
 "panels":panels,
}
open(__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), '..', 'deploy', 'grafana', 'schoolgate.json'),'w').write(json.dumps(dash,indent=2, ensure_ascii=False)+"\n")
print(len(panels))
